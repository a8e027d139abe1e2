// Package fs will be sprite's global namespace: each host exports local
// directories as domains under a prefix, a prefix table maps the longest
// matching prefix to its server, and every host mounts the same tree with
// FUSE at /sprite. The core here will know nothing of FUSE; a thin adapter
// will translate. Not built yet: see the namespace issue. Today the daemon
// already carries each host's exports in its config (daemon.Config.Exports;
// the lab exports every host's /home as /home/<host>).
package fs
