export * from './ssh';
