// Unit tests for the activation logic, run with plain Node (node --test): no VS Code needed.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import {
  DEFAULTS,
  DOCUMENT_SELECTOR,
  affectsServer,
  buildServerOptions,
  expandCommand,
  readSettings,
} from "../settings";

function getter(values: Record<string, unknown>) {
  return <T>(key: string) => values[key] as T | undefined;
}

test("defaults start `codeassist lsp` over stdio", () => {
  const settings = readSettings(getter({}));
  assert.deepEqual(settings, DEFAULTS);
  const exe = buildServerOptions(settings, { PATH: "/usr/bin" });
  assert.equal(exe.command, "codeassist");
  assert.deepEqual(exe.args, ["lsp"]);
  // No `transport`: with TransportKind.stdio vscode-languageclient appends `--stdio` to the arguments, which
  // `codeassist lsp` rejects. Without one it still speaks LSP over the process's stdin/stdout.
  assert.equal(exe.transport, undefined);
  assert.equal(exe.options?.env?.PATH, "/usr/bin");
  assert.equal(exe.options?.env?.CODEASSIST_SERVER_URL, undefined);
});

test("the command path setting is used, trimmed, and ~ / ${env:X} are expanded", () => {
  const settings = readSettings(getter({ command: "  ~/venv/bin/codeassist " }));
  const exe = buildServerOptions(settings, { HOME: "/home/ada" });
  assert.equal(exe.command, "/home/ada/venv/bin/codeassist");
  assert.equal(expandCommand("${env:TOOLS}/codeassist", { TOOLS: "/opt/t" }), "/opt/t/codeassist");
  assert.equal(expandCommand("/abs/codeassist", {}, "/home/x"), "/abs/codeassist");
});

test("blank or malformed settings fall back to the defaults", () => {
  const settings = readSettings(getter({ command: "   ", args: [1, 2], env: { A: 1 }, serverUrl: 5 }));
  assert.deepEqual(settings, DEFAULTS);
});

test("serverUrl and env reach the server's environment; the caller's env is not mutated", () => {
  const base = { PATH: "/bin", CODEASSIST_SERVER_URL: "http://old/v1" };
  const settings = readSettings(
    getter({ serverUrl: "http://gpu-box:8000/v1", env: { CODEASSIST_LOG_LEVEL: "DEBUG" }, args: ["lsp", "-v"] }),
  );
  const exe = buildServerOptions(settings, base);
  assert.equal(exe.options?.env?.CODEASSIST_SERVER_URL, "http://gpu-box:8000/v1");
  assert.equal(exe.options?.env?.CODEASSIST_LOG_LEVEL, "DEBUG");
  assert.deepEqual(exe.args, ["lsp", "-v"]);
  assert.equal(base.CODEASSIST_SERVER_URL, "http://old/v1");
});

test("an empty serverUrl keeps the inherited one", () => {
  const exe = buildServerOptions(readSettings(getter({ serverUrl: "" })), { CODEASSIST_SERVER_URL: "http://x/v1" });
  assert.equal(exe.options?.env?.CODEASSIST_SERVER_URL, "http://x/v1");
});

test("documents: every file and untitled buffer", () => {
  assert.deepEqual(
    DOCUMENT_SELECTOR.map((s) => s.scheme),
    ["file", "untitled"],
  );
});

test("only server-related setting changes restart the server", () => {
  assert.equal(affectsServer((s) => s === "codeassist.command"), true);
  assert.equal(affectsServer((s) => s === "codeassist.serverUrl"), true);
  assert.equal(affectsServer((s) => s === "codeassist.trace.server"), false);
  assert.equal(affectsServer((s) => s === "editor.fontSize"), false);
});

test("package.json contributes every setting the extension reads, with the same defaults", () => {
  const pkg = JSON.parse(readFileSync(join(__dirname, "..", "..", "package.json"), "utf8"));
  const props = pkg.contributes.configuration.properties;
  for (const [key, value] of Object.entries(DEFAULTS)) {
    assert.ok(props[`codeassist.${key}`], `codeassist.${key} is not contributed`);
    assert.deepEqual(props[`codeassist.${key}`].default, value, `default of codeassist.${key}`);
  }
  assert.equal(pkg.main, "./out/extension.js");
  assert.ok(pkg.dependencies["vscode-languageclient"]);
});

test("the settings module loads without VS Code", () => {
  // `vscode` only exists inside the editor: importing ../settings above worked without it.
  assert.throws(() => require("vscode"), /Cannot find module 'vscode'/);
});
