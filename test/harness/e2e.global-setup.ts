import setupMedium from './medium.global-setup';

/** E2E files use the same migrated template as the medium tier, cloned per file. */
export default setupMedium;
