// Packing (`pnpm pack`, `pnpm publish`): each package's `exports` point at its TypeScript
// sources for the workspace (tests, apps and tsx run them); the published manifest points each
// entry at the build output in `dist/`, declarations first. A new entry point is one line in
// `exports`, e.g. `"./adapter": "./src/adapter.ts"`.
const SOURCE = /^\.\/src\/(.+)\.ts$/;

function toDist(target, subpath) {
  const match = SOURCE.exec(target);
  if (!match) throw new Error(`exports["${subpath}"] = ${target}: expected ./src/<file>.ts`);
  return { types: `./dist/${match[1]}.d.ts`, default: `./dist/${match[1]}.js` };
}

function beforePacking(pkg) {
  if (pkg.exports && typeof pkg.exports === 'object') {
    pkg.exports = Object.fromEntries(
      Object.entries(pkg.exports).map(([subpath, target]) => [subpath, toDist(target, subpath)]),
    );
  }
  return pkg;
}

module.exports = { hooks: { beforePacking } };
