import { loadCommands } from '@coordbus/lua';

/** The Lua the installed hook sends with redis-cli, one `<name>-<numberOfKeys>.lua` beside this file (headers name KEYS, ARGV, replies). */
export const COMMANDS = loadCommands(__dirname);
