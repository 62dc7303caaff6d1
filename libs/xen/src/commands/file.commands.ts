import { assertAbsolutePath } from '../validation/allow-lists';
import { type Argv } from './xl.commands';

/**
 * Places an uploaded file as root:root 0600. Configs are uploaded by SFTP as the login user
 * (who owns the upload directory) and then installed over the final path, because an xl.cfg
 * carries the instance's heartbeat token and only root may read it on the host. The
 * simulator implements exactly this form.
 */
export function installRootOnlyArgv(source: string, destination: string): Argv {
  assertAbsolutePath(source, 'source');
  assertAbsolutePath(destination, 'destination');
  return ['install', '-o', 'root', '-g', 'root', '-m', '0600', source, destination];
}
