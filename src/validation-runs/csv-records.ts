/**
 * Why a record cannot be read. The codes are csv-parse's, which this parser replaced (see
 * CsvRecordParser): stored errors and the tests kept them.
 */
export type CsvProblemCode =
  | "CSV_QUOTE_NOT_CLOSED"
  | "CSV_INVALID_CLOSING_QUOTE"
  | "CSV_INVALID_OPENING_QUOTE"
  | "CSV_RECORD_INCONSISTENT_FIELDS_LENGTH"
  | "CSV_MAX_RECORD_SIZE";

/** Carries a code and a line only: never the record, which may hold personal data. */
export class CsvProblem extends Error {
  override name = "CsvProblem";
  constructor(
    readonly code: CsvProblemCode,
    readonly line: number,
  ) {
    super(`${code} at line ${line}`);
  }
}

/** A cut record longer than this waits for as much text again before it is scanned again. */
const RESCAN_AFTER = 64 * 1024;

const QUOTE = 34;
const LF = 10;
const CR = 13;

/**
 * A strict RFC 4180 reader of text pushed piece by piece: quoted fields may hold the delimiter,
 * line breaks and doubled quotes; records end with LF, CRLF or CR; empty lines are skipped; every
 * record must have as many fields as the first. A quote inside an unquoted field, text after a
 * closing quote, a quote never closed, a record longer than `maxRecordCharacters` or a wrong number
 * of fields is a CsvProblem naming its line.
 *
 * Written for this service rather than taken from a library: csv-parse was two thirds of a
 * validation run's time (about 100k rows per CPU-second), and uDSV, fast, is documented for
 * well-formed input (no error for a malformed quote, line breaks in quotes must match the row
 * separator), so keeping FILE_ERROR at its line would have needed a second, strict scan of every
 * byte. This one scans each piece once with charCodeAt and indexOf; a record cut by the end of a
 * piece is scanned again from its start with the next piece. A long one (past RESCAN_AFTER) only
 * once the text after it is as long as it: rescanned with every 64 kB piece, a record of a million
 * characters (a header of 500,000 columns) was scanned 16 times over, and a 20 MB file of such
 * records took 18 s where one of short records takes 1.
 */
export class CsvRecordParser {
  /** The start of a record cut by the end of the last piece. */
  private pending = "";
  /** Pieces held back, unscanned, after a long `pending` (see the class comment), and their length. */
  private deferred: string[] = [];
  private deferredLength = 0;
  /** The line `pending` starts on. */
  private line = 1;
  private fields = -1;
  private readonly delimiter: number;

  constructor(
    delimiter: string,
    /** `line` is the line the record ends on. */
    private readonly onRecord: (cells: string[], line: number) => void,
    private readonly maxRecordCharacters: number,
  ) {
    this.delimiter = delimiter.charCodeAt(0);
  }

  push(piece: string): void {
    if (piece.length === 0) return;
    if (this.pending.length === 0) return this.scan(piece, 0, false);
    const held = this.deferredLength + piece.length;
    // Never past the longest record: a record that long is refused as soon as the text holds it.
    if (this.pending.length > RESCAN_AFTER && held < this.pending.length && this.pending.length + held <= this.maxRecordCharacters) {
      this.deferred.push(piece);
      this.deferredLength += piece.length;
      return;
    }
    const text = this.takeDeferred() + piece;
    // The cut record is completed with the piece's first line only: joining it to the whole piece
    // would copy every piece once more.
    const newline = text.indexOf("\n");
    if (newline < 0) return this.scan(this.pending + text, 0, false);
    const pending = this.pending;
    this.pending = "";
    this.scan(pending + text.slice(0, newline + 1), 0, false);
    // Still cut: a quoted line break; the record goes on past that line.
    if (this.pending.length > 0) this.scan(this.pending + text.slice(newline + 1), 0, false);
    else this.scan(text, newline + 1, false);
  }

  /** Line breaks read so far, a cut record's (and the pieces held back after it) included. */
  linesRead(): number {
    let lines = this.line - 1;
    for (const text of [this.pending, ...this.deferred]) {
      for (let at = text.indexOf("\n"); at >= 0; at = text.indexOf("\n", at + 1)) lines++;
    }
    return lines;
  }

  /** After the last piece: the last record needs no line break. */
  end(): void {
    const rest = this.pending + this.takeDeferred();
    if (rest.length > 0) this.scan(rest, 0, true);
  }

  private takeDeferred(): string {
    if (this.deferred.length === 0) return "";
    const text = this.deferred.join("");
    this.deferred = [];
    this.deferredLength = 0;
    return text;
  }

  private scan(text: string, from: number, final: boolean): void {
    const length = text.length;
    const delimiter = this.delimiter;
    let line = this.line;
    let start = from;
    let recordLine = line;
    // Where the next line feed is, at or after the field being read (-1: none left in `text`).
    let nextNewline = 0;
    records: while (start < length) {
      recordLine = line;
      let code = text.charCodeAt(start);
      if (code === LF || code === CR) {
        // An empty line; a CR at the end of the piece may be the first half of a CRLF.
        if (code === CR) {
          if (start + 1 === length && !final) break;
          if (text.charCodeAt(start + 1) === LF) start++;
        }
        start++;
        line++;
        continue;
      }
      const cells: string[] = [];
      let at = start;
      for (;;) {
        if (at < length && text.charCodeAt(at) === QUOTE) {
          let value = "";
          let from = at + 1;
          let closing: number;
          for (;;) {
            closing = text.indexOf('"', from);
            if (closing < 0 || (closing + 1 === length && !final)) {
              if (final) throw new CsvProblem("CSV_QUOTE_NOT_CLOSED", recordLine);
              break records;
            }
            if (text.charCodeAt(closing + 1) !== QUOTE) break;
            value += text.slice(from, closing + 1);
            from = closing + 2;
          }
          value += text.slice(from, closing);
          // The next line break is looked up once and then only forward: searching from each quoted
          // field to the end of the text made a long record of quoted fields quadratic.
          if (nextNewline !== -1 && nextNewline <= at) nextNewline = text.indexOf("\n", at + 1);
          while (nextNewline !== -1 && nextNewline < closing) {
            line++;
            nextNewline = text.indexOf("\n", nextNewline + 1);
          }
          cells.push(value);
          at = closing + 1;
          code = at < length ? text.charCodeAt(at) : -1;
          if (code !== delimiter && code !== LF && code !== CR && code !== -1) throw new CsvProblem("CSV_INVALID_CLOSING_QUOTE", line);
        } else {
          let end = at;
          code = -1;
          for (; end < length; end++) {
            code = text.charCodeAt(end);
            if (code === delimiter || code === LF || code === CR || code === QUOTE) break;
          }
          if (end === length) {
            if (!final) break records;
            code = -1;
          }
          if (code === QUOTE) throw new CsvProblem("CSV_INVALID_OPENING_QUOTE", line);
          cells.push(at === end ? "" : text.slice(at, end));
          at = end;
        }
        if (code === delimiter) {
          at++;
          continue;
        }
        // The end of the record: LF, CR, CRLF or the end of the file.
        if (code === CR) {
          if (at + 1 === length && !final) break records;
          if (text.charCodeAt(at + 1) === LF) at++;
        }
        break;
      }
      if (this.fields !== cells.length) {
        if (this.fields >= 0) throw new CsvProblem("CSV_RECORD_INCONSISTENT_FIELDS_LENGTH", line);
        this.fields = cells.length;
      }
      this.onRecord(cells, line);
      start = at + 1;
      line++;
    }
    if (start >= length) {
      this.pending = "";
      this.line = line;
    } else {
      // Lines counted inside the cut record are counted again with it.
      this.pending = text.slice(start);
      this.line = recordLine;
      if (this.pending.length > this.maxRecordCharacters) throw new CsvProblem("CSV_MAX_RECORD_SIZE", recordLine);
    }
  }
}
