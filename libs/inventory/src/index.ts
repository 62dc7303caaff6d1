export { DataSource } from 'typeorm';
export * from './data-source.options';
