// The AWS SDK warns on stderr that it will drop Node 20 one day; tools parse our stderr, so that
// one warning (and only it) is dropped.
let installed = false;

export function quietSdkWarning(): void {
  if (installed) return;
  installed = true;
  const emit = process.emitWarning.bind(process);
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const text = typeof warning === 'string' ? warning : warning?.message ?? '';
    if (text.startsWith('NodeVersionSupportWarning')) return;
    (emit as (...a: unknown[]) => void)(warning, ...rest);
  }) as typeof process.emitWarning;
}
