-- luacheck settings for resi (make lint). Scripts run with the global
-- `resi`; specs run under busted; the scheduler and the test runner replace
-- a few standard functions on purpose.
std = "lua54"
globals = { "resi" }
max_line_length = 160
max_comment_line_length = false -- LuaLS annotations run long
unused_args = false        -- methods keep their documented signatures
files["spec/"] = { std = "+busted" }
files["lualib/resi/task.lua"] = { globals = { "coroutine" } }  -- wrap/resume that can wait
files["lualib/resi/cli/test.lua"] = { globals = { "os", "arg" } } -- busted's exit, unwound instead
-- specs re-assign results step by step and shadow helpers on purpose
files["spec/"].ignore = { "211", "311", "421", "431", "631" }
