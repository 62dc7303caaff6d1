/** Prints the README's role/permission table from ROLE_GRANTS and PERMISSION_DOCS in libs/core. */
import { permissionsTable } from '@norm/core';

process.stdout.write(`${permissionsTable()}\n`);
