// The same from CommonJS: require() of the ESM packages (Node.js >= 20.19).
const result = {};
for (const specifier of process.argv.slice(2)) {
  try {
    result[specifier] = { exports: Object.keys(require(specifier)).sort() };
  } catch (error) {
    const missing = /Cannot find (?:package|module) '([^']+)'/.exec(error.message);
    if (error.code !== 'ERR_MODULE_NOT_FOUND' || !missing) throw error;
    result[specifier] = { missing: missing[1] };
  }
}
console.log(JSON.stringify(result));
