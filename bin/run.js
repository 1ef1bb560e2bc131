#!/usr/bin/env node
// Kept for scripts that call bin/run.js; the command itself is bin/run.cjs.
import './run.cjs'
