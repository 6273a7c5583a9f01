import { loadCommands } from '@coordbus/lua';

/** The Lua commands of sentinel-subscriber, one `<name>-<numberOfKeys>.lua` beside this file (headers name KEYS, ARGV, replies). */
export const COMMANDS = loadCommands(__dirname);
