import { isUtf8 } from "node:buffer";
import { FileProblem } from "./file-problem.js";

export type FileEncoding = "utf-8" | "utf-8-bom" | "windows-1252";

const UTF8_BOM = [0xef, 0xbb, 0xbf];

/**
 * Guesses the encoding from the file's first chunk: a UTF-8 byte order mark says UTF-8; otherwise
 * bytes that are valid UTF-8 are taken as UTF-8 (ASCII included), and anything else as
 * Windows-1252, the encoding spreadsheets on Windows save "CSV" in. UTF-16 and binary files are
 * refused: their NUL bytes are never text in either encoding.
 */
export function detectEncoding(head: Buffer): FileEncoding {
  if (UTF8_BOM.every((byte, index) => head[index] === byte)) return "utf-8-bom";
  if ((head[0] === 0xff && head[1] === 0xfe) || (head[0] === 0xfe && head[1] === 0xff)) {
    throw new FileProblem("unsupported_encoding", "The file is UTF-16; save it as UTF-8 or Windows-1252");
  }
  // Bytes that are text in neither (NUL, bytes Windows-1252 leaves undefined) are refused as the
  // file is read, with their line.
  return isUtf8(head.subarray(0, completeUtf8Length(head))) ? "utf-8" : "windows-1252";
}

/** The length of `bytes` up to the last UTF-8 sequence that is complete in it. */
export function completeUtf8Length(bytes: Buffer): number {
  let start = bytes.length - 1;
  // At most three continuation bytes (10xxxxxx) end an incomplete sequence.
  while (start >= 0 && start >= bytes.length - 3 && (bytes[start]! & 0xc0) === 0x80) start--;
  if (start < 0) return bytes.length;
  const lead = bytes[start]!;
  const needed = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return start + needed > bytes.length ? start : bytes.length;
}

/** The offset of the first byte of `bytes` that starts no valid UTF-8 sequence; on the failure path only. */
export function firstInvalidUtf8Offset(bytes: Buffer): number {
  let index = 0;
  while (index < bytes.length) {
    const lead = bytes[index]!;
    const length = lead < 0x80 ? 1 : lead >= 0xc2 && lead <= 0xdf ? 2 : lead >= 0xe0 && lead <= 0xef ? 3 : lead >= 0xf0 && lead <= 0xf4 ? 4 : 0;
    if (length === 0 || index + length > bytes.length || !isUtf8(bytes.subarray(index, index + length))) return index;
    index += length;
  }
  return index;
}

// Bytes Windows-1252 leaves undefined, and NUL: a file holding them is not Windows-1252 text.
const NOT_WINDOWS_1252 = new Uint8Array(256);
for (const byte of [0x00, 0x81, 0x8d, 0x8f, 0x90, 0x9d]) NOT_WINDOWS_1252[byte] = 1;

/** The offset of the first byte in `bytes` that is not Windows-1252 text, or -1. */
export function firstNonWindows1252Byte(bytes: Buffer): number {
  for (let index = 0; index < bytes.length; index++) if (NOT_WINDOWS_1252[bytes[index]!]) return index;
  return -1;
}

export function badEncoding(encoding: string, offset: number, line: number): FileProblem {
  return new FileProblem("bad_encoding", `The file is not valid ${encoding} text at byte ${offset} (line ${line})`, { offset, line });
}
