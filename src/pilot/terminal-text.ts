/**
 * Output for a terminal: what `spike` prints comes partly from the store (secret values and
 * keys, custom metadata, policy names and patterns), which anyone allowed to write them chose.
 * Written raw to a terminal, control characters in it are commands to the terminal: escape
 * sequences can retitle the window, rewrite or hide lines already on screen (a value that looks
 * like another), or, on terminals that honour OSC 52, set the clipboard. So when stdout is a
 * terminal, every C0 control character but tab and newline, DEL and every C1 control character
 * is shown as `\xNN` (`\u00NN` for C1) instead, and so are the Unicode bidirectional overrides
 * and isolates (U+202A–U+202E, U+2066–U+2069: text shown in another order than it is stored,
 * "Trojan Source") as `\uNNNN`; our own output never contains any. Pipes and files get the exact
 * text, as does `--format yaml`. JSON output never holds any of them raw: JSON.stringify escapes
 * C0, and {@link escapeJsonControls} the rest (DEL, C1, bidirectional controls) as `\uNNNN`,
 * the same JSON value, so `--json` is valid and exact at a terminal and through a pipe alike.
 *
 * Left as they are on purpose: the bidirectional marks (U+200E, U+200F, U+061C) and zero-width
 * characters (U+200B–U+200D, U+2060, U+FEFF). They send the terminal no command and reorder or
 * hide nothing beyond their neighbours, and ordinary right-to-left text and emoji sequences
 * (ZWJ) need them. Known limit: a terminal set to 8-bit C1 controls in a non-UTF-8 locale may
 * take UTF-8 continuation bytes 0x80–0x9F of printable characters as C1; `spike` assumes a
 * UTF-8 terminal.
 */

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/** `text` with its terminal control characters made visible; `changed` says whether there were any. */
export function escapeForTerminal(text: string): { text: string; changed: boolean } {
  let changed = false;
  const out = text.replace(CONTROL, (c) => {
    changed = true;
    const code = c.charCodeAt(0);
    return code < 0x80 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
  return { text: out, changed };
}

/** The characters of CONTROL that JSON.stringify leaves raw. */
const JSON_RAW = /[\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/**
 * JSON text (JSON.stringify's) with DEL, C1 and the bidirectional controls written as `\uNNNN`:
 * they can only be inside strings there, so the JSON value is unchanged.
 */
export function escapeJsonControls(json: string): string {
  return json.replace(JSON_RAW, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The one warning a run prints the first time it escaped something. */
export const ESCAPED_NOTE =
  'Warning: the output contained terminal control characters; they are shown escaped (\\xNN, \\uNNNN). '
  + 'Redirect the output (or use --json) for the exact text.';
