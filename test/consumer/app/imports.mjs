// Imports every entry point given on the command line from plain Node.js (no TypeScript
// loader) and prints what each exports; an entry point that needs an optional peer that is not
// installed prints the missing peer instead.
const result = {};
for (const specifier of process.argv.slice(2)) {
  try {
    result[specifier] = { exports: Object.keys(await import(specifier)).sort() };
  } catch (error) {
    const missing = /Cannot find (?:package|module) '([^']+)'/.exec(error.message);
    if (error.code !== 'ERR_MODULE_NOT_FOUND' || !missing) throw error;
    result[specifier] = { missing: missing[1] };
  }
}
console.log(JSON.stringify(result));
