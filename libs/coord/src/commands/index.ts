import { loadCommands } from '@coordbus/lua';

/**
 * The Lua scripts behind every coord state change, one `<name>-<numberOfKeys>.lua` file each
 * beside this one (their headers name KEYS, ARGV and the replies); every state-change script
 * includes `includes/prelude.lua`, which documents their shared leading KEYS and ARGV.
 */
export const COORD_COMMANDS = loadCommands(__dirname);
