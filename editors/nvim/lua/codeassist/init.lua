-- codeassist for Neovim: require("codeassist").setup({})
--
-- Starts `codeassist lsp` for every normal file buffer and shows its inline completions as ghost
-- text. On Neovim 0.12+ the built-in vim.lsp.inline_completion does the showing and accepting; on
-- 0.10/0.11 (or with builtin = false) codeassist.inline does.
local config = require("codeassist.config")

local M = {}

local group = nil

--- True when Neovim's own inline completion (0.12+) is used.
function M.uses_builtin()
  local b = config.options.builtin
  return b ~= false and b ~= "never" and vim.lsp.inline_completion ~= nil
end

local function capabilities()
  local caps = vim.lsp.protocol.make_client_capabilities()
  caps.textDocument = caps.textDocument or {}
  -- Announcing inline completion tells the server not to also put the suggestion in the popup menu.
  caps.textDocument.inlineCompletion = caps.textDocument.inlineCompletion or { dynamicRegistration = false }
  caps.workspace = caps.workspace or {}
  caps.workspace.executeCommand = caps.workspace.executeCommand or { dynamicRegistration = false }
  return caps
end

local function root_dir(bufnr)
  local markers = config.options.root_markers
  if vim.fs.root then
    local root = vim.fs.root(bufnr, markers)
    if root then
      return root
    end
  else
    local path = vim.api.nvim_buf_get_name(bufnr)
    local found = vim.fs.find(markers, { path = vim.fs.dirname(path), upward = true })[1]
    if found then
      return vim.fs.dirname(found)
    end
  end
  return vim.fn.getcwd()
end

--- Start (or reuse) the codeassist client for a buffer. Returns the client id, or nil when skipped.
function M.attach(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  if not vim.api.nvim_buf_is_valid(bufnr) or vim.bo[bufnr].buftype ~= "" then
    return nil
  end
  if vim.api.nvim_buf_get_name(bufnr) == "" then
    return nil
  end
  if vim.tbl_contains(config.options.exclude_filetypes, vim.bo[bufnr].filetype) then
    return nil
  end
  local opts = config.options
  return vim.lsp.start({
    name = "codeassist",
    cmd = opts.cmd,
    cmd_env = opts.cmd_env,
    root_dir = root_dir(bufnr),
    capabilities = capabilities(),
  }, { bufnr = bufnr })
end

--- The fallback for an insert-mode key we map: the mapping that was there before, else the key itself.
local function make_fallback(key)
  local prev = vim.fn.maparg(key, "i", false, true)
  if type(prev) ~= "table" or vim.tbl_isempty(prev) or prev.buffer == 1 then
    return function()
      return key
    end
  end
  return function()
    if prev.callback then
      if prev.expr == 1 then
        local keys = prev.callback()
        if prev.replace_keycodes == 1 and type(keys) == "string" then
          keys = vim.api.nvim_replace_termcodes(keys, true, true, true)
        end
        vim.api.nvim_feedkeys(keys or "", prev.noremap == 1 and "n" or "m", false)
        return ""
      end
      vim.schedule(prev.callback)
      return ""
    end
    local rhs = prev.rhs or ""
    if prev.expr == 1 then
      rhs = vim.api.nvim_eval(rhs)
    end
    vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(rhs, true, true, true), prev.noremap == 1 and "n" or "m", false)
    return ""
  end
end

local function map(key, desc, when_visible)
  if not key then
    return
  end
  local fallback = make_fallback(key)
  vim.keymap.set("i", key, function()
    local keys = when_visible()
    if keys then
      return keys
    end
    return fallback()
  end, { expr = true, silent = true, desc = desc, replace_keycodes = true })
end

local function set_keymaps_plugin()
  local inline = require("codeassist.inline")
  local k = config.options.keymaps
  local function when(action)
    return function()
      if inline.visible() then
        return "<Cmd>lua require('codeassist.inline').accept('" .. action .. "')<CR>"
      end
    end
  end
  map(k.accept, "codeassist: accept suggestion", when("all"))
  map(k.accept_word, "codeassist: accept next word", when("word"))
  map(k.accept_line, "codeassist: accept next line", when("line"))
  map(k.dismiss, "codeassist: dismiss suggestion", function()
    if inline.visible() then
      return "<Cmd>lua require('codeassist.inline').dismiss()<CR>"
    end
  end)
  if k.next then
    vim.keymap.set("i", k.next, function()
      inline.dismiss()
      inline.trigger(inline.TRIGGER_INVOKED)
    end, { silent = true, desc = "codeassist: ask for a suggestion" })
  end
end

local function set_keymaps_builtin()
  local ic = vim.lsp.inline_completion
  local k = config.options.keymaps
  if k.accept then
    local fallback = make_fallback(k.accept)
    -- get() accepts the shown item (applying its text and running its codeassist.accept command).
    vim.keymap.set("i", k.accept, function()
      if not ic.get() then
        return fallback()
      end
    end, { expr = true, silent = true, replace_keycodes = true, desc = "codeassist: accept suggestion" })
  end
  if k.next and ic.select then
    vim.keymap.set("i", k.next, function()
      ic.select({ count = 1 })
    end, { silent = true, desc = "codeassist: next suggestion" })
  end
end

function M.setup(opts)
  config.set(opts)
  vim.api.nvim_set_hl(0, config.options.hl_group, { link = "Comment", default = true })
  group = vim.api.nvim_create_augroup("codeassist", { clear = true })

  vim.api.nvim_create_autocmd("FileType", {
    group = group,
    callback = function(args)
      M.attach(args.buf)
    end,
  })

  if M.uses_builtin() then
    vim.api.nvim_create_autocmd("LspAttach", {
      group = group,
      callback = function(args)
        local client = vim.lsp.get_client_by_id(args.data.client_id)
        if client and client.name == "codeassist" then
          pcall(vim.lsp.inline_completion.enable, true, { bufnr = args.buf })
        end
      end,
    })
    set_keymaps_builtin()
  else
    require("codeassist.inline").setup_autocmds(group)
    set_keymaps_plugin()
  end

  -- Buffers opened before setup() ran.
  for _, buf in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(buf) and vim.bo[buf].filetype ~= "" then
      M.attach(buf)
    end
  end
end

-- Plugin-path API (ignored when the built-in is used).
function M.accept(kind)
  return require("codeassist.inline").accept(kind)
end

function M.dismiss()
  return require("codeassist.inline").dismiss()
end

function M.visible()
  return require("codeassist.inline").visible()
end

function M.suggestion()
  return require("codeassist.inline").state()
end

return M
