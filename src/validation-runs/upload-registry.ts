import type { StoredFile } from "./file-store.js";

/**
 * The files stored for one multipart request, by the placeholder that replaced each in the
 * operation's variables. Only that request's resolvers see it: a placeholder sent in a JSON request,
 * or in another request, names nothing.
 */
export class UploadRegistry {
  private readonly unclaimed = new Map<string, StoredFile>();

  add(placeholder: string, file: StoredFile): void {
    this.unclaimed.set(placeholder, file);
  }

  /** The file behind `placeholder`, handed out once: whoever takes it keeps or deletes it. */
  take(placeholder: unknown): StoredFile | null {
    if (typeof placeholder !== "string") return null;
    const file = this.unclaimed.get(placeholder) ?? null;
    this.unclaimed.delete(placeholder);
    return file;
  }

  /** Files no resolver took (the operation failed before, or did not use them): to delete. */
  leftovers(): StoredFile[] {
    return [...this.unclaimed.values()];
  }
}
