#!/usr/bin/env -S node --max-semi-space-size=2
// Thin launcher: src/main.ts is compiled to dist/ by `npm ci` (the prepare script) or `npm run build`.
// --max-semi-space-size=2 (MiB): V8's young generation otherwise grows to 2 x 16 MiB under a manifest
// load and stays there, and to 2 x 8 MiB during start-up; what a registry allocates per request dies
// young, so small semi-spaces cost little. Node reads the flag only at start (setting
// it later from the process has no effect), so every launcher passes it: this line, the Dockerfile,
// `npm start`.
import '../dist/main.js';
