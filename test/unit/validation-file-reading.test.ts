import { describe, expect, it } from "vitest";
import { userMessage } from "../../src/jobs/error-categories.js";
import { CsvFileReader } from "../../src/validation-runs/csv-reader.js";
import { CsvRecordParser } from "../../src/validation-runs/csv-records.js";
import { detectDelimiter } from "../../src/validation-runs/delimiter.js";
import { completeUtf8Length, detectEncoding } from "../../src/validation-runs/encoding.js";
import { FileProblem } from "../../src/validation-runs/file-problem.js";

/** Reads `bytes` in pieces of `pieceBytes`; returns the records and what was detected. */
function read(bytes: Buffer, pieceBytes = 7, sampleBytes?: number) {
  const records: string[][] = [];
  const reader = new CsvFileReader({ header: (cells) => records.push(cells), row: (cells) => records.push(cells) }, sampleBytes);
  for (let offset = 0; offset < bytes.length; offset += pieceBytes) reader.push(bytes.subarray(offset, offset + pieceBytes));
  reader.end();
  return { records, encoding: reader.encoding, delimiter: reader.delimiter };
}

function problemOf(bytes: Buffer, pieceBytes = 7, sampleBytes?: number): FileProblem {
  try {
    read(bytes, pieceBytes, sampleBytes);
  } catch (error) {
    expect(error).toBeInstanceOf(FileProblem);
    return error as FileProblem;
  }
  throw new Error("expected a FileProblem");
}

const windows1252 = (text: string) => Buffer.from([...text].map((char) => ({ "é": 0xe9, "€": 0x80, "ü": 0xfc, "œ": 0x9c })[char] ?? char.charCodeAt(0)));

describe("encoding detection", () => {
  it("tells UTF-8 with a BOM, UTF-8 without, and Windows-1252 apart; refuses UTF-16", () => {
    expect(detectEncoding(Buffer.from("\uFEFFa,b\n", "utf8"))).toBe("utf-8-bom");
    expect(detectEncoding(Buffer.from("name,prix\nCafé,3 €\n", "utf8"))).toBe("utf-8");
    expect(detectEncoding(Buffer.from("plain,ascii\n"))).toBe("utf-8");
    expect(detectEncoding(windows1252("name,prix\nCafé,3 €\n"))).toBe("windows-1252");
    expect(() => detectEncoding(Buffer.from("\uFEFFa,b", "utf16le"))).toThrow(FileProblem);
  });

  it("finds where a UTF-8 character is cut by a chunk boundary", () => {
    const euro = Buffer.from("a€", "utf8");
    expect(completeUtf8Length(euro)).toBe(4);
    expect(completeUtf8Length(euro.subarray(0, 3))).toBe(1);
    expect(completeUtf8Length(euro.subarray(0, 2))).toBe(1);
  });
});

describe("delimiter detection", () => {
  it("takes the separator the header uses most, outside quotes", () => {
    expect(detectDelimiter("a,b,c\n1;2;3;4;5\n")).toBe(",");
    expect(detectDelimiter("a;b;c\n")).toBe(";");
    expect(detectDelimiter("a\tb\tc\r\n")).toBe("\t");
    expect(detectDelimiter('"x;y;z"|b|c\n')).toBe("|");
    expect(detectDelimiter("single\n")).toBe(",");
  });
});

describe("CsvFileReader", () => {
  it("reads UTF-8 split at every byte, multi-byte characters included, and strips a BOM", () => {
    const text = "nom;montant\r\nCafé crème;3,50 €\r\n\"Dûr; \"\"x\"\"\";1\r\n";
    const expected = [["nom", "montant"], ["Café crème", "3,50 €"], ['Dûr; "x"', "1"]];
    expect(read(Buffer.from(text, "utf8"), 1)).toEqual({ records: expected, encoding: "utf-8", delimiter: ";" });
    expect(read(Buffer.from(`\uFEFF${text}`, "utf8"), 2)).toEqual({ records: expected, encoding: "utf-8-bom", delimiter: ";" });
  });

  it("reads Windows-1252 as the characters it encodes (€ is 0x80, œ 0x9c)", () => {
    const { records, encoding } = read(windows1252("name,price\nŒuvre,1\nCafé œuf,3 €\n".replace("Œ", "œ")), 5);
    expect(encoding).toBe("windows-1252");
    expect(records).toEqual([["name", "price"], ["œuvre", "1"], ["Café œuf", "3 €"]]);
  });

  it("reads as Windows-1252 a file whose first accented character comes after the sample, and not a UTF-8 one", () => {
    const late = read(windows1252("name,price\nplain,1\nCafé €,2\n"), 4, 8);
    expect(late.encoding).toBe("windows-1252");
    expect(late.records).toEqual([["name", "price"], ["plain", "1"], ["Café €", "2"]]);
    // UTF-8 accents in the sample settle the question: a later invalid byte is an error.
    expect(problemOf(Buffer.concat([Buffer.from("name,price\nCafé,1\n", "utf8"), windows1252("Thé,2\n")]), 4, 8).reason).toBe("bad_encoding");
  });

  it("names the line of a malformed record, never its content", () => {
    const wrongCount = problemOf(Buffer.from("a,b\n1,2\nsecret,x,3\n4,5\n"));
    expect(wrongCount.facts).toEqual({ line: 3, code: "CSV_RECORD_INCONSISTENT_FIELDS_LENGTH" });
    const unclosed = problemOf(Buffer.from('a,b\n1,2\n3,"secret\n4,5\n6,7\n'));
    expect(unclosed.facts).toEqual({ line: 3, code: "CSV_QUOTE_NOT_CLOSED" });
    const badQuote = problemOf(Buffer.from('a,b\n1,2\n"secret"x,4\n'));
    expect(badQuote.facts).toMatchObject({ line: 3, code: "CSV_INVALID_CLOSING_QUOTE" });
    for (const problem of [wrongCount, unclosed, badQuote]) {
      expect(problem.reason).toBe("malformed_csv");
      expect(problem.message).not.toContain("secret");
    }
  });

  it("refuses bytes that are text in neither encoding, naming the line and offset", () => {
    // UTF-8 through the sample the encoding is decided on, then a lone continuation byte on line 3.
    const bytes = Buffer.concat([Buffer.from("a,b\nCafé,1\nx", "utf8"), Buffer.from([0x80]), Buffer.from(",2\n")]);
    const problem = problemOf(bytes, 4, 8);
    expect(problem.reason).toBe("bad_encoding");
    expect(problem.facts).toEqual({ offset: 13, line: 3 });
    // A byte Windows-1252 leaves undefined, after a quoted field spanning two lines.
    const undefinedByte = Buffer.concat([windows1252('a,b\n"x\ny",é\n1,2\n'), Buffer.from([0x81]), Buffer.from(",3\n")]);
    expect(problemOf(undefinedByte, 3, 4).facts).toEqual({ offset: 16, line: 5 });
    expect(problemOf(undefinedByte, 1024).facts).toEqual({ offset: 16, line: 5 });
    expect(problemOf(Buffer.from("a,b\n1,\u0000\n")).facts).toEqual({ offset: 6, line: 2 });
  });

  it("names a record past the length limit for what it is, not as malformed CSV", () => {
    const endless = problemOf(Buffer.from(`a,b\n1,2\n"secret${"x".repeat(1 << 20)}`), 64 * 1024);
    expect([endless.reason, endless.facts]).toEqual(["record_too_long", { line: 3, code: "CSV_MAX_RECORD_SIZE" }]);
    expect(endless.message).not.toContain("secret");
    expect(userMessage("FILE_ERROR", "en", { reason: endless.reason, ...endless.facts })).toMatch(/longer than 1,048,576 characters at line 3/);
  });

  it("calls an empty file empty", () => {
    expect(problemOf(Buffer.alloc(0)).reason).toBe("empty_file");
    expect(problemOf(Buffer.from("\n\n")).reason).toBe("empty_file");
  });
});

describe("CsvFileReader record parsing (RFC 4180), at every chunk boundary", () => {
  /** The same answer whatever the piece size: every boundary falls inside a field, a quote, a CRLF. */
  function readEvery(text: string | Buffer) {
    const bytes = typeof text === "string" ? Buffer.from(text, "utf8") : text;
    const whole = read(bytes, bytes.length + 1, 1 << 20);
    for (const piece of [1, 2, 3, 5, 8]) expect(read(bytes, piece, 4)).toEqual(whole);
    return whole.records;
  }

  function problemEvery(text: string): FileProblem {
    const whole = problemOf(Buffer.from(text, "utf8"), text.length + 1, 1 << 20);
    for (const piece of [1, 2, 3, 5]) expect(problemOf(Buffer.from(text, "utf8"), piece, 4).facts).toEqual(whole.facts);
    expect(whole.reason).toBe("malformed_csv");
    expect(whole.message).not.toContain("secret");
    return whole;
  }

  it("keeps delimiters, line breaks and doubled quotes inside quoted fields", () => {
    expect(readEvery('a,b,c\n"x,y","1\n2","say ""hi"""\n"",z,""""\n')).toEqual([
      ["a", "b", "c"],
      ["x,y", "1\n2", 'say "hi"'],
      ["", "z", '"'],
    ]);
  });

  it("ends records with CRLF, LF or CR, skips empty lines, and needs no line break at the end", () => {
    expect(readEvery("a;b\r\n1;2\r\n\r\n3;\n\n;4\r5;6")).toEqual([["a", "b"], ["1", "2"], ["3", ""], ["", "4"], ["5", "6"]]);
    expect(readEvery('a,b\r\n"1\r\n2","x"\r\n')).toEqual([["a", "b"], ["1\r\n2", "x"]]);
    expect(readEvery('a,b\n1,"x"')).toEqual([["a", "b"], ["1", "x"]]);
  });

  it("completes a multi-byte character cut by a chunk boundary, inside a quoted field too", () => {
    expect(readEvery('nom,prix\n"Crème, brûlée",3 €\n€uro,"😀\n€"\n')).toEqual([["nom", "prix"], ["Crème, brûlée", "3 €"], ["€uro", "😀\n€"]]);
  });

  it("names the line a quote never closed opened, after quoted line breaks", () => {
    expect(problemEvery('a,b\n"1\n2",x\n3,"secret\n4,5\n').facts).toEqual({ line: 4, code: "CSV_QUOTE_NOT_CLOSED" });
    expect(problemEvery('a,b\n1,2\n3,"secret').facts).toEqual({ line: 3, code: "CSV_QUOTE_NOT_CLOSED" });
  });

  it("refuses a stray quote in an unquoted field and text after a closing quote, naming the line", () => {
    expect(problemEvery('a,b\n"x\ny",1\nse"cret,2\n').facts).toEqual({ line: 4, code: "CSV_INVALID_OPENING_QUOTE" });
    expect(problemEvery('a,b\n1,2\n"secret" ,2\n').facts).toEqual({ line: 3, code: "CSV_INVALID_CLOSING_QUOTE" });
    expect(problemEvery('a,b\n1,2\n"x\nsecret",2,3\n').facts).toEqual({ line: 4, code: "CSV_RECORD_INCONSISTENT_FIELDS_LENGTH" });
  });
});

describe("CsvFileReader memory bound", () => {
  // Long records are held back until the text after them is as long (csv-records.ts): the same
  // records whatever the pieces, wide lines and quoted line breaks alike.
  it("reads records longer than a piece the same in pieces as whole", () => {
    const wide = Array.from({ length: 30_000 }, (_, index) => `c${index}`).join(",");
    const quoted = `"${"line\n".repeat(30_000)}"`;
    const text = `${wide}\n${wide}\n${Array.from({ length: 30_000 }, () => "1").join(",")}\n`;
    const parse = (source: string, piece: number) => {
      const records: string[][] = [];
      const parser = new CsvRecordParser(",", (cells) => records.push(cells), 1 << 20);
      for (let at = 0; at < source.length; at += piece) parser.push(source.slice(at, at + piece));
      parser.end();
      return records;
    };
    for (const source of [text, `a,b\n1,${quoted}\n2,3\n${quoted},4`]) {
      const whole = parse(source, source.length);
      for (const piece of [997, 8192, 65_536]) expect(parse(source, piece)).toEqual(whole);
    }
  });

  it("refuses a record longer than a mebi-character (a quote never closed) before the end of the file", () => {
    const problem = problemOf(Buffer.from(`a\n1\n"${"x".repeat((1 << 20) + 10)}`), 64 * 1024);
    expect(problem.facts).toEqual({ line: 3, code: "CSV_MAX_RECORD_SIZE" });
  });
});
