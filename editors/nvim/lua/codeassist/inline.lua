-- Ghost text for Neovim < 0.12 (and when the built-in is turned off): asks the codeassist language
-- server for textDocument/inlineCompletion while typing, shows the first item with extmarks (inline
-- virtual text on the cursor line, virtual lines below), and accepts it whole, by word or by line.
local config = require("codeassist.config")

local M = {}

M.ns = vim.api.nvim_create_namespace("codeassist")
local has_011 = vim.fn.has("nvim-0.11") == 1

local TRIGGER_INVOKED, TRIGGER_AUTOMATIC = 1, 2

---@class codeassist.Suggestion
---@field bufnr integer
---@field client_id integer
---@field text string       what is still to be accepted, starting at (row, col)
---@field row integer       0-based
---@field col integer       0-based byte column of the cursor the text starts at
---@field replace_end integer byte column up to which the accepted text replaces the line (>= col)
---@field command table|nil the item's LSP command (codeassist.accept)
---@field accepted integer  characters of the suggestion already accepted (partial accepts)
---@field snippet boolean

---@type codeassist.Suggestion|nil
local current = nil
local scheduled = false
local inflight = nil ---@type {client: table, id: integer, bufnr: integer}|nil

-- -- small compatibility layer (0.10 uses client.request, 0.11+ client:request) -----------------------
local function request(client, method, params, handler, bufnr)
  if has_011 then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

local function cancel(client, id)
  if has_011 then
    return client:cancel_request(id)
  end
  return client.cancel_request(id)
end

--- Byte column of an LSP character offset on `line`, in the client's position encoding.
local function byte_col(line, character, encoding)
  if encoding == "utf-8" then
    return math.min(character, #line)
  end
  local ok, col
  if has_011 then
    ok, col = pcall(vim.str_byteindex, line, encoding, character, false)
  else
    ok, col = pcall(vim.str_byteindex, line, character, encoding == "utf-16")
  end
  return ok and col or #line
end

function M.get_client(bufnr)
  return vim.lsp.get_clients({ bufnr = bufnr, name = "codeassist" })[1]
end

local function in_insert()
  return vim.api.nvim_get_mode().mode:sub(1, 1) == "i"
end

local function cursor()
  local pos = vim.api.nvim_win_get_cursor(0)
  return pos[1] - 1, pos[2]
end

-- -- rendering ---------------------------------------------------------------------------------------
local function display(s)
  return (s:gsub("\t", string.rep(" ", vim.bo.tabstop > 0 and vim.bo.tabstop or 8)))
end

function M.render()
  local s = current
  if not s or not vim.api.nvim_buf_is_valid(s.bufnr) then
    return
  end
  vim.api.nvim_buf_clear_namespace(s.bufnr, M.ns, 0, -1)
  if s.text == "" then
    return
  end
  local hl = config.options.hl_group
  local lines = vim.split(s.text, "\n", { plain = true })
  local opts = { hl_mode = "combine", priority = 1000 }
  if lines[1] ~= "" then
    opts.virt_text = { { display(lines[1]), hl } }
    opts.virt_text_pos = "inline"
  end
  if #lines > 1 then
    opts.virt_lines = {}
    for i = 2, #lines do
      table.insert(opts.virt_lines, { { display(lines[i]), hl } })
    end
  end
  s.extmark = vim.api.nvim_buf_set_extmark(s.bufnr, M.ns, s.row, s.col, opts)
end

function M.clear()
  if current and vim.api.nvim_buf_is_valid(current.bufnr) then
    vim.api.nvim_buf_clear_namespace(current.bufnr, M.ns, 0, -1)
  end
  current = nil
end

function M.cancel_inflight()
  if inflight then
    pcall(cancel, inflight.client, inflight.id)
    inflight = nil
  end
end

function M.dismiss()
  M.cancel_inflight()
  M.clear()
end

function M.visible()
  return current ~= nil and current.text ~= "" and current.bufnr == vim.api.nvim_get_current_buf()
end

--- The suggestion shown now (for statuslines and tests).
function M.state()
  if not current then
    return nil
  end
  local cmd = current.command
  return {
    text = current.text,
    row = current.row,
    col = current.col,
    bufnr = current.bufnr,
    id = cmd and cmd.arguments and cmd.arguments[1] or nil,
    accepted = current.accepted,
  }
end

-- -- requesting --------------------------------------------------------------------------------------
local function item_text(item)
  local t = item.insertText
  if type(t) == "table" then -- StringValue (snippet)
    return t.value or "", true
  end
  return t or "", item.insertTextFormat == 2
end

--- Turn an item into a suggestion anchored at the cursor, or nil when it does not fit there.
local function to_suggestion(bufnr, client, item, row, col)
  local text, snippet = item_text(item)
  local line = vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ""
  local replace_end = col
  if item.range then
    local r = item.range
    if r.start.line ~= row or r["end"].line ~= row then
      return nil
    end
    local enc = client.offset_encoding or "utf-16"
    local start_col = byte_col(line, r.start.character, enc)
    local end_col = byte_col(line, r["end"].character, enc)
    if start_col > col or end_col < col then
      return nil
    end
    -- Text between the range start and the cursor was typed already: it must prefix the suggestion.
    local typed = line:sub(start_col + 1, col)
    if text:sub(1, #typed) ~= typed then
      return nil
    end
    text = text:sub(#typed + 1)
    replace_end = end_col
  end
  if text == "" then
    return nil
  end
  return {
    bufnr = bufnr,
    client_id = client.id,
    text = text,
    row = row,
    col = col,
    replace_end = replace_end,
    command = item.command,
    accepted = 0,
    snippet = snippet,
  }
end

--- Show the first item of an InlineCompletionList (or item array) that fits at (row, col).
function M.show(bufnr, client, result, row, col)
  if bufnr == 0 then
    bufnr = vim.api.nvim_get_current_buf()
  end
  local items = result.items or result
  for _, item in ipairs(items) do
    local s = to_suggestion(bufnr, client, item, row, col)
    if s then
      M.clear()
      current = s
      M.render()
      vim.api.nvim_exec_autocmds("User", { pattern = "CodeassistSuggestion", modeline = false })
      return true
    end
  end
  return false
end

function M.request(bufnr, kind)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  if bufnr ~= vim.api.nvim_get_current_buf() or not in_insert() then
    return
  end
  local client = M.get_client(bufnr)
  if not client then
    return
  end
  M.cancel_inflight()
  local row, col = cursor()
  local tick = vim.api.nvim_buf_get_changedtick(bufnr)
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding or "utf-16")
  params.context = { triggerKind = kind or TRIGGER_AUTOMATIC }
  local ok, id
  ok, id = request(client, "textDocument/inlineCompletion", params, function(err, result)
    if inflight and inflight.id == id then
      inflight = nil
    end
    if err or not result then
      return
    end
    -- Drop stale answers: the buffer or the cursor moved on while the server was thinking.
    if not vim.api.nvim_buf_is_valid(bufnr) or bufnr ~= vim.api.nvim_get_current_buf() or not in_insert() then
      return
    end
    local r, c = cursor()
    if r ~= row or c ~= col or vim.api.nvim_buf_get_changedtick(bufnr) ~= tick then
      return
    end
    M.show(bufnr, client, result, row, col)
  end, bufnr)
  if ok and id then
    inflight = { client = client, id = id, bufnr = bufnr }
  end
end

--- Ask once for the current cursor, however many events fire before the event loop runs again.
function M.trigger(kind)
  if scheduled then
    return
  end
  scheduled = true
  vim.schedule(function()
    scheduled = false
    M.request(vim.api.nvim_get_current_buf(), kind)
  end)
end

-- -- accepting ---------------------------------------------------------------------------------------
local function next_word(text)
  return text:match("^%s*[%w_]+") or text:match("^%s*[^%w_%s]+") or text:match("^%s+") or text
end

local function next_line(text)
  if text:sub(1, 1) == "\n" then
    return "\n" .. (text:sub(2):match("^[^\n]*") or "")
  end
  return text:match("^[^\n]*")
end

local function run_command(s, full)
  local cmd = s.command
  if not cmd or not cmd.command then
    return
  end
  local client = vim.lsp.get_client_by_id(s.client_id)
  if not client then
    return
  end
  local args = vim.deepcopy(cmd.arguments or {})
  if not full then
    table.insert(args, s.accepted)
  end
  request(client, "workspace/executeCommand", { command = cmd.command, arguments = args }, function() end, s.bufnr)
end

--- Accept the suggestion: "all" (default), "word" or "line". Returns true when something was inserted.
function M.accept(kind)
  kind = kind or "all"
  local s = current
  if not s or s.text == "" or s.bufnr ~= vim.api.nvim_get_current_buf() then
    return false
  end
  M.cancel_inflight()
  if s.snippet and vim.snippet then
    kind = "all"
  end
  local part = s.text
  if kind == "word" then
    part = next_word(s.text)
  elseif kind == "line" then
    part = next_line(s.text)
  end
  vim.api.nvim_buf_clear_namespace(s.bufnr, M.ns, 0, -1)
  local replace_end = s.replace_end
  if part ~= s.text then
    replace_end = s.col -- partial: keep the rest of the line after the cursor
  end
  if s.snippet and vim.snippet then
    vim.api.nvim_buf_set_text(s.bufnr, s.row, s.col, s.row, replace_end, { "" })
    vim.api.nvim_win_set_cursor(0, { s.row + 1, s.col })
    vim.snippet.expand(part)
  else
    local lines = vim.split(part, "\n", { plain = true })
    vim.api.nvim_buf_set_text(s.bufnr, s.row, s.col, s.row, replace_end, lines)
    local row, col = s.row + #lines - 1, #lines[#lines]
    if #lines == 1 then
      col = s.col + #part
    end
    vim.api.nvim_win_set_cursor(0, { row + 1, col })
    s.row, s.col, s.replace_end = row, col, col
  end
  s.accepted = s.accepted + vim.fn.strchars(part)
  s.text = s.text:sub(#part + 1)
  local full = s.text == ""
  run_command(s, full)
  if full then
    current = nil
  else
    M.render()
  end
  return true
end

-- -- events ------------------------------------------------------------------------------------------
local function on_char()
  local ch = vim.v.char
  local s = current
  if s and s.bufnr == vim.api.nvim_get_current_buf() and ch ~= "" and s.text:sub(1, #ch) == ch then
    -- Typing what is suggested keeps the rest of the suggestion up (re-rendered on CursorMovedI).
    local r, c = cursor()
    if r == s.row and c == s.col then
      s.text = s.text:sub(#ch + 1)
      s.col = s.col + #ch
      s.replace_end = math.max(s.replace_end, s.col)
      s.accepted = s.accepted + vim.fn.strchars(ch)
      if s.text ~= "" then
        return
      end
    end
  end
  M.dismiss()
  if config.options.auto_trigger then
    M.trigger(TRIGGER_AUTOMATIC)
  end
end

local function on_moved()
  local s = current
  if s then
    local r, c = cursor()
    if s.bufnr == vim.api.nvim_get_current_buf() and r == s.row and c == s.col then
      M.render() -- still anchored where the suggestion continues (typed through or partly accepted)
      return
    end
    M.dismiss()
  end
  if config.options.auto_trigger then
    M.trigger(TRIGGER_AUTOMATIC)
  end
end

function M.setup_autocmds(group)
  vim.api.nvim_create_autocmd("InsertCharPre", { group = group, callback = on_char })
  vim.api.nvim_create_autocmd("CursorMovedI", { group = group, callback = on_moved })
  vim.api.nvim_create_autocmd({ "InsertLeave", "BufLeave" }, { group = group, callback = M.dismiss })
end

M.TRIGGER_INVOKED = TRIGGER_INVOKED
M.TRIGGER_AUTOMATIC = TRIGGER_AUTOMATIC

return M
