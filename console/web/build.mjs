// Builds the console's assets (../assets) from src/ with the pinned esbuild;
// make console-assets runs it after scripts/console-tools.sh installed the
// packages into the tools cache (CONSOLE_NODE_MODULES).
import { createRequire } from 'node:module';
import { copyFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const modules = process.env.CONSOLE_NODE_MODULES;
if (!modules) {
  console.error('build.mjs: CONSOLE_NODE_MODULES is not set (source the env scripts/console-tools.sh writes)');
  process.exit(2);
}
const esbuild = createRequire(join(modules, 'x.js'))('esbuild');
const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, '..', 'assets');
const common = { bundle: true, minify: true, nodePaths: [modules], logLevel: 'warning', legalComments: 'eof', charset: 'utf8' };
await esbuild.build({ ...common, entryPoints: [join(here, 'src', 'main.js')], outfile: join(out, 'app.js'), format: 'iife', target: ['es2020'] });
await esbuild.build({ ...common, entryPoints: [join(here, 'src', 'app.css')], outfile: join(out, 'app.css') });
copyFileSync(join(here, 'index.html'), join(out, 'index.html'));
