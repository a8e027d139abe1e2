// Package idledb will be the idle-host database (Sprite's migd): hosts
// report idleness, requesters get leased grants longest-idle first with
// fairness. Not built yet: see the idle detection issue. The daemon already
// carries each host's idle threshold (daemon.Config.IdleAfter).
package idledb
