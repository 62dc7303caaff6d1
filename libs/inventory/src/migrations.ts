// Migrations live at the repository root (`migrations/`) so they are reviewed as their own tree.
export { MIGRATIONS } from '../../../migrations';
