/**
 * The JSON a client sends, typed from the server's request schema: `RequestJson<T>` for a
 * schema's parsed type `T` has the same field names, with `[]byte` fields (parsed to Buffer)
 * as base64 strings and maps (parsed to `Map`) as plain objects. Every field is optional
 * because fields with a server default may be left out. A client that types its bodies with
 * it cannot misspell a field the server reads.
 */

/** The JSON form of one parsed request value. */
export type JsonOf<V> = V extends Uint8Array
  ? string
  : V extends ReadonlyMap<string, infer E>
    ? Record<string, JsonOf<E>>
    : V extends readonly (infer E)[]
      ? readonly JsonOf<E>[]
      : V extends object
        ? RequestJson<V>
        : V;

/** The JSON body of a request whose schema parses to `T`. */
export type RequestJson<T> = { [K in keyof T]?: JsonOf<T[K]> };
