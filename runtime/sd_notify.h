/* sd_notify.h: one notification to systemd (see sd_notify.c). */
#ifndef RESI_SD_NOTIFY_H
#define RESI_SD_NOTIFY_H

/* Sends state (e.g. "READY=1") to $NOTIFY_SOCKET. Returns 1 when sent, 0
 * when $NOTIFY_SOCKET is unset (not run by systemd), -errno on failure. */
int resi_sd_notify(const char *state);

#endif
