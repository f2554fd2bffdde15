/** Policy pattern bounds shared by Nexus and the CLI (bound.ts). */
export { compileBounded, isAsciiPunct, literalOf, MAX_PATTERN_PROGRAM, META, programSize } from './bound.js';
export { re2 } from './re2.js';
