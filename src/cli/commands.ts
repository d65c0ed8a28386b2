// Every command of ours by oclif id, its module imported when asked for. launch.ts reads the ids
// (without loading a command), direct.ts the modules; a test holds the table equal to
// dist/commands/, which oclif's manifest and help read.
export const COMMANDS: Record<string, () => Promise<{ default: unknown }>> = {
  check: () => import('../commands/check.js'),
  compact: () => import('../commands/compact.js'),
  create: () => import('../commands/create.js'),
  export: () => import('../commands/export.js'),
  inspect: () => import('../commands/inspect.js'),
  merge: () => import('../commands/merge.js'),
  unpack: () => import('../commands/unpack.js'),
  'nydusify:check': () => import('../commands/nydusify/check.js'),
  'nydusify:convert': () => import('../commands/nydusify/convert.js'),
  'nydusify:copy': () => import('../commands/nydusify/copy.js'),
  'nydusify:pack': () => import('../commands/nydusify/pack.js'),
};
