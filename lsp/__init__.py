"""The `codeassist lsp` bridge: an LSP server on stdio that forwards to the per-user daemon."""
