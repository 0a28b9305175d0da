// The config file names velora looks for, nearest folder first (its own module: bin/velora.js
// reads it before the CLI loads).
export const CONFIG_NAMES = ['sessions.config.ts', 'sessions.config.mts', 'sessions.config.js', 'sessions.config.mjs']
