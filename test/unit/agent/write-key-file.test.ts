import { promises as fs, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  KeyFileWriteError,
  mountFor,
  parseMounts,
  removeStaleKeyFile,
  writeKeyFile,
} from "../../../src/agent/write-key-file.js";

const MOUNTS = `overlay / overlay rw,relatime 0 0
proc /proc proc rw 0 0
tmpfs /dev tmpfs rw,nosuid 0 0
shm /dev/shm tmpfs rw 0 0
/dev/sda1 /var/lib/mysql ext4 rw 0 0
tmpfs /var/run/tde\\040keys tmpfs rw 0 0
/dev/sda1 /etc/hosts ext4 rw 0 0
`;

const scratch = mkdtempSync(join(tmpdir(), "agent-unit-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A fake mount table: `tmpRoot` on tmpfs, everything else on ext4. */
function mountsWith(tmpRoot: string): string {
  const file = join(scratch, `mounts-${Math.random()}`);
  writeFileSync(file, `/dev/sda1 / ext4 rw 0 0\ntmpfs ${tmpRoot} tmpfs rw 0 0\n`);
  return file;
}

describe("R26 memory-backed key file", () => {
  it("finds the mount a path lives on, longest prefix first, with escaped spaces", () => {
    const mounts = parseMounts(MOUNTS);
    expect(mountFor(mounts, "/dev/shm/tde/keyfile")?.fsType).toBe("tmpfs");
    expect(mountFor(mounts, "/dev/shmx/keyfile")?.mountPoint).toBe("/dev");
    expect(mountFor(mounts, "/var/lib/mysql/keyfile")?.fsType).toBe("ext4");
    expect(mountFor(mounts, "/var/run/tde keys/keyfile")?.fsType).toBe("tmpfs");
    expect(mountFor(mounts, "/srv/keyfile")?.fsType).toBe("overlay");
  });

  it("writes the key file with mode 0400, replacing an earlier one atomically", async () => {
    const dir = join(scratch, "mem", "keys");
    const mountsFile = mountsWith(join(scratch, "mem"));
    const out = join(dir, "keyfile");
    expect(await writeKeyFile(out, Buffer.from("first"), { allowDisk: false, mountsFile })).toBe("tmpfs");
    expect(await writeKeyFile(out, Buffer.from("second"), { allowDisk: false, mountsFile })).toBe("tmpfs");
    const stat = await fs.stat(out);
    expect(stat.mode & 0o777).toBe(0o400);
    expect((await fs.stat(dir)).mode & 0o777).toBe(0o700);
    expect(await fs.readFile(out, "utf8")).toBe("second");
    expect((await fs.readdir(dir)).filter((n) => n.endsWith(".tmp"))).toEqual([]);
  });

  it("refuses a disk-backed path with a message that says what to do, unless --allow-disk", async () => {
    const mountsFile = mountsWith("/nowhere");
    const out = join(scratch, "disk", "keyfile");
    const error = await writeKeyFile(out, Buffer.from("k"), { allowDisk: false, mountsFile }).catch((e) => e);
    expect(error).toBeInstanceOf(KeyFileWriteError);
    expect((error as Error).message).toMatch(/it is on ext4.*emptyDir with medium: Memory.*--allow-disk/);
    await expect(fs.stat(out)).rejects.toThrow();
    expect(await writeKeyFile(out, Buffer.from("k"), { allowDisk: true, mountsFile })).toBe("ext4");
  });

  it("refuses an --out that is a directory", async () => {
    const dir = join(scratch, "mem2", "keys");
    await fs.mkdir(dir, { recursive: true });
    const mountsFile = mountsWith(join(scratch, "mem2"));
    await expect(writeKeyFile(dir, Buffer.from("k"), { allowDisk: false, mountsFile })).rejects.toThrow(
      /is a directory/,
    );
  });

  it("removes a stale key file and nothing else", async () => {
    const file = join(scratch, "stale");
    writeFileSync(file, "old", { mode: 0o400 });
    expect(await removeStaleKeyFile(file)).toBe(true);
    expect(await removeStaleKeyFile(file)).toBe(false);
    expect(await removeStaleKeyFile(scratch)).toBe(false);
  });
});
