/** Errors an enqueue refuses a caller's input with (the API answers them with BAD_USER_INPUT). */

export class UnknownJobTypeError extends Error {
  override name = "UnknownJobTypeError";
}

export class InvalidJobInputError extends Error {
  override name = "InvalidJobInputError";
  constructor(readonly problems: string[]) {
    super(problems.join("; "));
  }
}
