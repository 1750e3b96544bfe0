// VS Code entry point: start `codeassist lsp` and let vscode-languageclient register the LSP 3.18
// inline completion provider (ghost text). Accepting a suggestion runs the item's `codeassist.accept`
// command, which the client forwards to the server as workspace/executeCommand.
import * as vscode from "vscode";
import { LanguageClient, type LanguageClientOptions, type ServerOptions } from "vscode-languageclient/node";

import { DOCUMENT_SELECTOR, SECTION, affectsServer, buildServerOptions, readSettings } from "./settings";

let client: LanguageClient | undefined;

function makeClient(output: vscode.LogOutputChannel): LanguageClient {
  const config = vscode.workspace.getConfiguration(SECTION);
  const settings = readSettings((key) => config.get(key));
  const serverOptions: ServerOptions = buildServerOptions(settings, process.env);
  const clientOptions: LanguageClientOptions = {
    documentSelector: DOCUMENT_SELECTOR,
    outputChannel: output,
  };
  return new LanguageClient("codeassist", "codeassist", serverOptions, clientOptions);
}

async function start(output: vscode.LogOutputChannel): Promise<void> {
  client = makeClient(output);
  try {
    await client.start();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    void vscode.window.showErrorMessage(
      `codeassist: cannot start the language server (${message}). Check the "codeassist.command" setting.`,
    );
  }
}

async function stop(): Promise<void> {
  const old = client;
  client = undefined;
  if (old) {
    await old.stop().catch(() => undefined);
  }
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel("codeassist", { log: true });
  context.subscriptions.push(output);
  context.subscriptions.push(
    vscode.commands.registerCommand("codeassist.restart", async () => {
      await stop();
      await start(output);
    }),
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (affectsServer((section) => event.affectsConfiguration(section))) {
        await stop();
        await start(output);
      }
    }),
  );
  await start(output);
}

export async function deactivate(): Promise<void> {
  await stop();
}
