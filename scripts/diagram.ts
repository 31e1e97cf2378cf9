// Regenerates docs/state-machine.md from TRANSITIONS (npm run diagram). A test fails when
// the committed file is out of date with the table.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { stateMachineMarkdown } from './diagram-source.js';

const target = fileURLToPath(new URL('../docs/state-machine.md', import.meta.url));
writeFileSync(target, stateMachineMarkdown());
console.log(`wrote ${target}`);
