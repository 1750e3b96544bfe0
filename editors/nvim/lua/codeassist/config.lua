-- Options for require("codeassist").setup({...}); every key is optional.
local M = {}

M.defaults = {
  -- How to start the language server (a list, as for vim.lsp.start).
  cmd = { "codeassist", "lsp" },
  -- Extra environment for the server, e.g. { CODEASSIST_SERVER_URL = "http://gpu-box:8000/v1" }.
  cmd_env = nil,
  -- Files that mark a project root (the workspace folder sent to the server); else the cwd.
  root_markers = { ".git", ".hg", "pyproject.toml", "package.json", "go.mod", "Cargo.toml" },
  -- Attach to every normal file buffer except these filetypes.
  exclude_filetypes = { "help", "gitcommit", "gitrebase", "TelescopePrompt", "NvimTree", "neo-tree", "lazy", "mason" },
  -- Ask for suggestions while typing (InsertCharPre / CursorMovedI). The daemon debounces.
  auto_trigger = true,
  -- "auto": use Neovim's built-in vim.lsp.inline_completion (0.12+) when it exists; false: always the plugin's.
  builtin = "auto",
  -- Insert-mode keys; set one to false to leave that key alone.
  keymaps = {
    accept = "<Tab>", -- whole suggestion when one is shown, otherwise Tab's normal meaning
    accept_word = "<M-Right>",
    accept_line = "<M-C-Right>",
    dismiss = "<C-]>", -- leaving insert mode (Esc) always dismisses
    next = "<M-]>", -- ask again (explicit trigger)
  },
  -- Highlight group for the ghost text (defined linked to Comment unless it already exists).
  hl_group = "CodeassistSuggestion",
}

M.options = vim.deepcopy(M.defaults)

function M.set(opts)
  M.options = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), opts or {})
  return M.options
end

return M
