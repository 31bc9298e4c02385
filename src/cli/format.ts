/** Output as kubectl prints it: an aligned table, or JSON or YAML of the same data. Pure. */
import { stringify } from "yaml";
import type { OutputFormat } from "./args.js";

/** A column: its header and how to read a row's cell. */
export interface Column<Row> {
  header: string;
  cell: (row: Row) => string;
}

/** Columns padded to their widest cell, three spaces apart, trailing spaces trimmed. */
export function renderTable<Row>(columns: readonly Column<Row>[], rows: readonly Row[]): string {
  const cells = [columns.map((c) => c.header), ...rows.map((r) => columns.map((c) => c.cell(r) || "-"))];
  const widths = columns.map((_, i) => Math.max(...cells.map((line) => (line[i] ?? "").length)));
  return cells
    .map((line) =>
      line
        .map((cell, i) => (i === line.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
        .join("   ")
        .trimEnd(),
    )
    .join("\n")
    .concat("\n");
}

/** The table for people; JSON or YAML of `data` for scripts. */
export function render<Row>(
  format: OutputFormat,
  columns: readonly Column<Row>[],
  rows: readonly Row[],
  data: unknown = rows,
  empty = "No resources found.\n",
): string {
  switch (format) {
    case "json":
      return `${JSON.stringify(data, null, 2)}\n`;
    case "yaml":
      return stringify(data);
    case "table":
      return rows.length === 0 ? empty : renderTable(columns, rows);
  }
}

/** "2025-01-31T12:00:00.000Z" -> "2025-01-31T12:00:00Z": what a person reads in a table. */
export function shortTime(iso: string | undefined): string {
  if (!iso) return "";
  const t = Date.parse(iso);
  return Number.isNaN(t) ? iso : new Date(t).toISOString().replace(/\.\d{3}Z$/, "Z");
}
