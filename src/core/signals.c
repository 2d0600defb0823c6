/* signals.c: see signals.h. The handler only records the signal; a second
 * SIGINT restores the default action so an impatient user can still kill. */
#include "kd/core/signals.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t received;

static void on_signal(int sig)
{
    if (received == SIGINT && sig == SIGINT)
        signal(SIGINT, SIG_DFL);
    received = sig;
}

void signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

int signals_interrupted(void) { return received; }
