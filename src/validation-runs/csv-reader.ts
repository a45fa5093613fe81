import { isAscii, isUtf8 } from "node:buffer";
import { CsvError, Parser } from "csv-parse";
import iconv from "iconv-lite";
import { detectDelimiter, type Delimiter } from "./delimiter.js";
import { badEncoding, completeUtf8Length, detectEncoding, firstInvalidUtf8Offset, firstNonWindows1252Byte, type FileEncoding } from "./encoding.js";
import { FileProblem } from "./file-problem.js";

export interface CsvRecordSink {
  /** The first record. Throws FileProblem when it does not fit. */
  header(cells: string[]): void;
  /** Every later record; `row` counts the header as row 1, as spreadsheets do. */
  row(cells: string[], row: number): void;
}

/**
 * Bytes looked at before deciding the encoding and the delimiter (the header line is in them). A
 * file taken for UTF-8 whose first non-ASCII bytes, later, are not UTF-8 is read as Windows-1252
 * from there: up to them, both encodings read the same.
 */
export const SAMPLE_BYTES = 64 * 1024;

/** Longest record accepted, in characters: a quote never closed must not buffer the whole file. */
const MAX_RECORD_CHARACTERS = 1 << 20;

interface ParserApi {
  parse(buffer: Buffer | undefined, end: boolean, push: (record: string[]) => void, close: () => void): Error | undefined;
  info: { lines: number };
}

/**
 * Reads a CSV file pushed chunk by chunk, in constant memory: detects the encoding (first 64 kB)
 * and the delimiter (header line), checks the bytes are text in that encoding, and hands each
 * record to `sink` synchronously. Throws FileProblem for an unreadable file.
 */
export class CsvFileReader {
  encoding: FileEncoding | null = null;
  delimiter: Delimiter | null = null;
  records = 0;
  /** The line the last record ended on. */
  private lastRecordLine = 0;
  /**
   * Line feeds handed to the parser so far (its own counter lags behind: it holds back a chunk's
   * last bytes until it sees what follows them), where a bad byte's line count starts.
   */
  private newlinesFed = 0;
  private api: ParserApi | null = null;
  private bytesRead = 0;
  private utf8Tail: Buffer | null = null;
  /** Every byte so far was ASCII: the file may still turn out to be Windows-1252. */
  private asciiSoFar = true;
  private sample: Buffer[] = [];
  private sampleLength = 0;

  constructor(
    private readonly sink: CsvRecordSink,
    private readonly sampleBytes = SAMPLE_BYTES,
  ) {}

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.encoding === null) {
      this.sample.push(chunk);
      this.sampleLength += chunk.length;
      if (this.sampleLength >= this.sampleBytes) this.decideEncoding();
      return;
    }
    this.decode(chunk);
  }

  /** After the last chunk: flushes the last record; an empty file or a cut character is a FileProblem. */
  end(): void {
    if (this.encoding === null && this.sampleLength > 0) this.decideEncoding();
    if (this.utf8Tail?.length) throw badEncoding("UTF-8", this.bytesRead - this.utf8Tail.length, this.lineAt(this.utf8Tail, 0));
    if (this.api) this.parse(undefined, true);
    if (this.records === 0) throw new FileProblem("empty_file", "The file is empty: it has no header line");
  }

  private decideEncoding(): void {
    const sample = Buffer.concat(this.sample, this.sampleLength);
    this.sample = [];
    this.encoding = detectEncoding(sample);
    if (this.encoding === "utf-8-bom") {
      this.bytesRead = 3;
      this.decode(sample.subarray(3));
    } else this.decode(sample);
  }

  private decode(chunk: Buffer): void {
    const offset = this.bytesRead;
    this.bytesRead += chunk.length;
    this.feed(this.encoding === "windows-1252" ? this.fromWindows1252(chunk, offset) : this.utf8(chunk, offset));
  }

  private utf8(chunk: Buffer, offset: number): Buffer {
    // A character cut by the chunk boundary is completed by the next chunk.
    const bytes = this.utf8Tail?.length ? Buffer.concat([this.utf8Tail, chunk]) : chunk;
    const start = offset - (this.utf8Tail?.length ?? 0);
    const complete = completeUtf8Length(bytes);
    this.utf8Tail = complete < bytes.length ? Buffer.from(bytes.subarray(complete)) : null;
    const text = bytes.subarray(0, complete);
    if (!isUtf8(text)) {
      if (this.asciiSoFar && this.encoding === "utf-8") {
        this.encoding = "windows-1252";
        this.utf8Tail = null;
        return this.fromWindows1252(bytes, start);
      }
      const invalid = firstInvalidUtf8Offset(text);
      throw badEncoding("UTF-8", start + invalid, this.lineAt(text, invalid));
    }
    const nul = text.indexOf(0);
    if (nul >= 0) throw badEncoding("UTF-8", start + nul, this.lineAt(text, nul));
    if (this.asciiSoFar) this.asciiSoFar = isAscii(text);
    return text;
  }

  private fromWindows1252(chunk: Buffer, offset: number): Buffer {
    const invalid = firstNonWindows1252Byte(chunk);
    if (invalid >= 0) throw badEncoding("Windows-1252", offset + invalid, this.lineAt(chunk, invalid));
    // csv-parse reads UTF-8; every Windows-1252 byte is one character, so no state crosses chunks.
    // iconv-lite, because Node's TextDecoder("windows-1252") decodes Latin-1 (0x80 is not "€").
    return Buffer.from(iconv.decode(chunk, "windows-1252"), "utf8");
  }

  private feed(text: Buffer): void {
    if (text.length === 0) return;
    this.newlinesFed += countLines(text, text.length);
    if (!this.api) {
      this.delimiter = detectDelimiter(text.subarray(0, 64 * 1024).toString("utf8"));
      // The parser's own state machine, driven directly: going through its Transform stream costs
      // an object-mode push and a callback per record (a quarter of the parse time measured).
      const parser = new Parser({ delimiter: this.delimiter, skip_empty_lines: true, max_record_size: MAX_RECORD_CHARACTERS });
      this.api = (parser as unknown as { api: ParserApi }).api;
    }
    this.parse(text, false);
  }

  private parse(text: Buffer | undefined, end: boolean): void {
    const error = this.api!.parse(text, end, this.onRecord, noop);
    if (error) throw toFileProblem(error, this.lastRecordLine + 1);
  }

  private readonly onRecord = (cells: string[]): void => {
    this.records++;
    this.lastRecordLine = this.api!.info.lines;
    if (this.records === 1) this.sink.header(cells);
    else this.sink.row(cells, this.records);
  };

  /** The line of byte `index` of `bytes`, the bytes that follow what the parser has read. */
  private lineAt(bytes: Buffer, index: number): number {
    return this.newlinesFed + countLines(bytes, index) + 1;
  }
}

function noop(): void {}

function countLines(bytes: Buffer, end: number): number {
  let lines = 0;
  for (let index = bytes.indexOf(10); index >= 0 && index < end; index = bytes.indexOf(10, index + 1)) lines++;
  return lines;
}

// csv-parse's messages quote the offending record: only its code and line are kept. A quote never
// closed is reported at the end of the file; the record it opened starts after the last good one.
function toFileProblem(error: Error, nextRecordLine: number): Error {
  if (!(error instanceof CsvError)) return error;
  const line = error.code === "CSV_QUOTE_NOT_CLOSED" ? nextRecordLine : (error as CsvError & { lines?: number }).lines;
  return new FileProblem("malformed_csv", `Malformed CSV at line ${line ?? "?"} (${error.code})`, { ...(line ? { line } : {}), code: error.code });
}
