import { loadCommands } from '@coordbus/lua';

/** The job store's Lua commands, one `<name>-<numberOfKeys>.lua` beside this file (headers name KEYS, ARGV, replies). */
export const COMMANDS = loadCommands(__dirname);
