/* wall_timer.h: a timer armed at a wall-clock time (see wall_timer.c). */
#ifndef RESI_WALL_TIMER_H
#define RESI_WALL_TIMER_H

#include "host.h"

/* core.wall_timer(epoch_seconds, task, token) -> handle | nil, message, code. */
int resi_core_wall_timer(lua_State *L);

/* Registers the wall timer's class; luaopen_resi_core calls it. */
void resi_wall_timer_class(lua_State *L);

#endif
