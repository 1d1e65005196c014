#!/usr/bin/env node
// Thin launcher: src/main.ts is compiled to dist/ by `npm ci` (the prepare script) or `npm run build`.
import '../dist/main.js';
