// Pure activation logic: settings -> how to start `codeassist lsp`, and which documents it serves.
// This module must not import `vscode` at runtime, so it can be unit-tested with plain Node.
import type { Executable } from "vscode-languageclient/node";

export const SECTION = "codeassist";

export interface CodeassistSettings {
  /** The codeassist executable; started as `<command> <args...>`. */
  command: string;
  args: string[];
  /** Sets CODEASSIST_SERVER_URL for the server when not empty. */
  serverUrl: string;
  env: Record<string, string>;
}

export const DEFAULTS: CodeassistSettings = {
  command: "codeassist",
  args: ["lsp"],
  serverUrl: "",
  env: {},
};

/** Reads the settings through a getter shaped like `WorkspaceConfiguration.get`. */
export type SettingGetter = <T>(key: string) => T | undefined;

function isStringRecord(value: unknown): value is Record<string, string> {
  return (
    typeof value === "object" &&
    value !== null &&
    !Array.isArray(value) &&
    Object.values(value).every((v) => typeof v === "string")
  );
}

export function readSettings(get: SettingGetter): CodeassistSettings {
  const command = get<string>("command");
  const args = get<string[]>("args");
  const serverUrl = get<string>("serverUrl");
  const env = get<Record<string, string>>("env");
  return {
    command: typeof command === "string" && command.trim() !== "" ? command.trim() : DEFAULTS.command,
    args: Array.isArray(args) && args.every((a) => typeof a === "string") ? [...args] : [...DEFAULTS.args],
    serverUrl: typeof serverUrl === "string" ? serverUrl.trim() : DEFAULTS.serverUrl,
    env: isStringRecord(env) ? { ...env } : { ...DEFAULTS.env },
  };
}

/** Expands a leading `~` and `${env:NAME}` references in the command path. */
export function expandCommand(command: string, baseEnv: NodeJS.ProcessEnv, home?: string): string {
  let out = command.replace(/\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => baseEnv[name] ?? "");
  const h = home ?? baseEnv.HOME ?? baseEnv.USERPROFILE;
  if (h && (out === "~" || out.startsWith("~/"))) {
    out = h + out.slice(1);
  }
  return out;
}

/**
 * The executable for vscode-languageclient's `ServerOptions`, spoken to over its stdin/stdout.
 *
 * `transport` is left out on purpose: with `transport: TransportKind.stdio` vscode-languageclient appends
 * `--stdio` to the arguments, and `codeassist lsp --stdio` exits with "unrecognized arguments". Without a
 * transport it spawns the command as given and still talks LSP over the process's stdio.
 */
export function buildServerOptions(settings: CodeassistSettings, baseEnv: NodeJS.ProcessEnv): Executable {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(baseEnv)) {
    if (v !== undefined) env[k] = v;
  }
  Object.assign(env, settings.env);
  if (settings.serverUrl !== "") {
    env.CODEASSIST_SERVER_URL = settings.serverUrl;
  }
  return {
    command: expandCommand(settings.command, baseEnv),
    args: [...settings.args],
    options: { env },
  };
}

/** Every file and untitled buffer: the model completes any language. */
export const DOCUMENT_SELECTOR = [
  { scheme: "file" },
  { scheme: "untitled" },
];

/** Whether a configuration change needs the language server restarted. */
export function affectsServer(affects: (section: string) => boolean): boolean {
  return ["command", "args", "serverUrl", "env"].some((k) => affects(`${SECTION}.${k}`));
}
