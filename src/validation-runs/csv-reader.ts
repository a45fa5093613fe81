import { isAscii, isUtf8 } from "node:buffer";
import iconv from "iconv-lite";
import { detectDelimiter, type Delimiter } from "./delimiter.js";
import { badEncoding, completeUtf8Length, detectEncoding, firstInvalidUtf8Offset, firstNonWindows1252Byte, type FileEncoding } from "./encoding.js";
import { CsvProblem, CsvRecordParser } from "./csv-records.js";
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
export const MAX_RECORD_CHARACTERS = 1 << 20;

/**
 * Reads a CSV file pushed chunk by chunk, in constant memory: detects the encoding (first 64 kB)
 * and the delimiter (header line), checks the bytes are text in that encoding, and hands each
 * record to `sink` synchronously. Throws FileProblem for an unreadable file.
 */
export class CsvFileReader {
  encoding: FileEncoding | null = null;
  delimiter: Delimiter | null = null;
  records = 0;
  private parser: CsvRecordParser | null = null;
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
    if (this.parser) this.parse(null);
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

  private utf8(chunk: Buffer, offset: number): string {
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
    // Whole characters only (the cut one waits in utf8Tail): no decoder state crosses chunks.
    return text.toString("utf8");
  }

  private fromWindows1252(chunk: Buffer, offset: number): string {
    const invalid = firstNonWindows1252Byte(chunk);
    if (invalid >= 0) throw badEncoding("Windows-1252", offset + invalid, this.lineAt(chunk, invalid));
    // iconv-lite, because Node's TextDecoder("windows-1252") decodes Latin-1 (0x80 is not "€").
    return iconv.decode(chunk, "windows-1252");
  }

  private feed(text: string): void {
    if (text.length === 0) return;
    if (!this.parser) {
      this.delimiter = detectDelimiter(text.slice(0, 64 * 1024));
      this.parser = new CsvRecordParser(this.delimiter, this.onRecord, MAX_RECORD_CHARACTERS);
    }
    this.parse(text);
  }

  /** Hands `text` to the parser, or ends it (null). */
  private parse(text: string | null): void {
    try {
      if (text === null) this.parser!.end();
      else this.parser!.push(text);
    } catch (error) {
      // Only the code and the line: the record may hold personal data.
      if (error instanceof CsvProblem && error.code === "CSV_MAX_RECORD_SIZE") {
        // Its own reason: "an unclosed quote or a wrong number of columns" would send the user looking for the wrong thing.
        throw new FileProblem("record_too_long", `Record longer than ${MAX_RECORD_CHARACTERS} characters at line ${error.line}`, { line: error.line, code: error.code });
      }
      if (error instanceof CsvProblem) {
        throw new FileProblem("malformed_csv", `Malformed CSV at line ${error.line} (${error.code})`, { line: error.line, code: error.code });
      }
      throw error;
    }
  }

  private readonly onRecord = (cells: string[]): void => {
    this.records++;
    if (this.records === 1) this.sink.header(cells);
    else this.sink.row(cells, this.records);
  };

  /** The line of byte `index` of `bytes`, the bytes that follow what the parser has read. */
  private lineAt(bytes: Buffer, index: number): number {
    // Counted on the failure path only: the parser counts the lines of what it was handed.
    return (this.parser?.linesRead() ?? 0) + countLines(bytes, index) + 1;
  }
}

function countLines(bytes: Buffer, end: number): number {
  let lines = 0;
  for (let index = bytes.indexOf(10); index >= 0 && index < end; index = bytes.indexOf(10, index + 1)) lines++;
  return lines;
}
