// The backend flags shared by create, check, unpack and export (spec §4.4), with upstream's
// underscore spellings as aliases.
import * as Flags from '@oclif/core/flags';
import { BACKEND_TYPES, backendFromFlags, type BackendSpec } from '../backends/index.js';

export const backendFlags = {
  'backend-type': Flags.string({ aliases: ['backend_type'], description: `type of storage backend: ${BACKEND_TYPES.join(', ')}` }),
  'backend-config': Flags.string({ aliases: ['backend_config'], description: 'backend config as JSON (upstream\'s fields)' }),
  'backend-config-file': Flags.string({ aliases: ['backend_config_file'], description: 'file holding the backend config JSON' }),
};

export function backendSpecOf(flags: { 'backend-type'?: string; 'backend-config'?: string; 'backend-config-file'?: string }): BackendSpec | undefined {
  return backendFromFlags(flags['backend-type'], flags['backend-config'], flags['backend-config-file']);
}
