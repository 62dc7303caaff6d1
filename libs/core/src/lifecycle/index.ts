export * from './heartbeat';
export * from './reaper.decide';
export * from './reaper.port';
export * from './reaper.loop';
export * from './heartbeat.service';
export * from './reaper.actions';
export * from './lifecycle.service';
export * from './alertmanager';
