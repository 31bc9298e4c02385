export * from "./azure-errors.js";
export * from "./azure-key-vault.js";
export * from "./key-id.js";
export * from "./local.js";
export * from "./provider.js";
export * from "./requirements.js";
