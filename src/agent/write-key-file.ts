/**
 * Writing the key file (R26): only to a memory-backed file system (an emptyDir with
 * `medium: Memory` is tmpfs), mode 0400, atomically (a temporary file in the same directory,
 * then a rename), so the engine never reads half a key and the key never touches a disk.
 */
import { randomBytes } from "node:crypto";
import { constants, promises as fs } from "node:fs";
import { basename, dirname, join, resolve, sep } from "node:path";

/** File systems whose pages live in memory only. */
export const MEMORY_FILE_SYSTEMS: readonly string[] = ["tmpfs", "ramfs"];

export class KeyFileWriteError extends Error {
  override readonly name = "KeyFileWriteError";
}

export interface MountEntry {
  mountPoint: string;
  fsType: string;
}

/** /proc/mounts escapes space, tab, newline and backslash as octal (\040 ...). */
function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

/** Parses the text of /proc/mounts (or /proc/self/mounts). */
export function parseMounts(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split("\n")) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 3) continue;
    entries.push({ mountPoint: unescapeMountField(fields[1] as string), fsType: fields[2] as string });
  }
  return entries;
}

/**
 * The mount a path lives on: the longest mount point that is the path or one of its parents; of
 * several mounts on the same point, the last one (the one on top).
 */
export function mountFor(entries: readonly MountEntry[], path: string): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const entry of entries) {
    const point = entry.mountPoint;
    const covers =
      point === "/" || path === point || path.startsWith(point.endsWith(sep) ? point : `${point}${sep}`);
    if (!covers) continue;
    if (!best || point.length >= best.mountPoint.length) best = entry;
  }
  return best;
}

export interface WriteKeyFileOptions {
  /** allow a disk-backed file system (tests, development) */
  allowDisk: boolean;
  /** where the mount table is read from; default /proc/self/mounts */
  mountsFile?: string;
}

/**
 * Checks that `dir` is on a memory-backed file system. Throws a KeyFileWriteError that says what
 * to do otherwise, unless `allowDisk`. Returns the file system type found.
 */
export async function checkMemoryBacked(dir: string, options: WriteKeyFileOptions): Promise<string> {
  let mounts: string;
  try {
    mounts = await fs.readFile(options.mountsFile ?? "/proc/self/mounts", "utf8");
  } catch {
    if (options.allowDisk) return "unknown";
    throw new KeyFileWriteError(
      "cannot read /proc/self/mounts to prove the key file would stay in memory: " +
        "run on Linux, or pass --allow-disk for a development machine",
    );
  }
  const real = await fs.realpath(dir);
  const mount = mountFor(parseMounts(mounts), real);
  const fsType = mount?.fsType ?? "unknown";
  if (MEMORY_FILE_SYSTEMS.includes(fsType) || options.allowDisk) return fsType;
  throw new KeyFileWriteError(
    `refusing to write the key file to ${real}: it is on ${fsType} (mounted at ${mount?.mountPoint ?? "?"}), ` +
      "which may reach a disk. Mount an emptyDir with medium: Memory there (or any tmpfs), " +
      "or pass --allow-disk if a key on disk is acceptable",
  );
}

/**
 * Makes sure the key file can go to `out`: its directory exists (created mode 0700 when
 * missing), `out` is not a directory, and the file system is memory-backed (unless allowDisk).
 * Run it before contacting any vault, so a misconfigured pod fails fast. Returns the target
 * path and the file system type.
 */
export async function prepareDestination(
  out: string,
  options: WriteKeyFileOptions,
): Promise<{ target: string; dir: string; fsType: string }> {
  const target = resolve(out);
  const dir = dirname(target);
  try {
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new KeyFileWriteError(`cannot create the directory ${dir}: ${(error as Error).message}`);
  }
  const existing = await fs.lstat(target).catch(() => undefined);
  if (existing?.isDirectory()) {
    throw new KeyFileWriteError(
      `${target} is a directory: --out names the key file itself, e.g. ${join(target, "keys.txt")}`,
    );
  }
  const fsType = await checkMemoryBacked(dir, options);
  return { target, dir, fsType };
}

/**
 * Writes `content` to `out` with mode 0400 after checking the destination. An existing file at
 * `out` is replaced atomically. Returns the file system type.
 */
export async function writeKeyFile(
  out: string,
  content: Uint8Array,
  options: WriteKeyFileOptions,
): Promise<string> {
  const { target, dir, fsType } = await prepareDestination(out, options);
  const temporary = join(dir, `.${basename(target)}.${randomBytes(6).toString("hex")}.tmp`);
  let handle: fs.FileHandle | undefined;
  try {
    // O_EXCL: never follow or reuse a file someone placed there; 0400 from the first byte.
    handle = await fs.open(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o400);
    await handle.writeFile(content);
    await handle.chmod(0o400);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fs.rename(temporary, target);
  } catch (error) {
    await handle?.close().catch(() => {});
    await fs.rm(temporary, { force: true }).catch(() => {});
    throw new KeyFileWriteError(`cannot write the key file ${target}: ${(error as Error).message}`);
  }
  return fsType;
}

/**
 * Removes a key file left by an earlier run, so an engine restarted after the key was revoked
 * cannot start from a stale copy. Only a regular file is removed; a missing one is fine.
 */
export async function removeStaleKeyFile(out: string): Promise<boolean> {
  const target = resolve(out);
  const stat = await fs.lstat(target).catch(() => undefined);
  if (!stat?.isFile()) return false;
  await fs.rm(target, { force: true });
  return true;
}
