# The live sync plot of docs/benchmarks.md (docs/bench/live.sh draws it):
# commit-to-client latency and database work, polling against long-polling.
set terminal pngcairo size 1400,500 font "DejaVu Sans,10"
set output "docs/bench/live.png"
set datafile separator "\t"
set datafile commentschars "#"
set multiplot layout 1,2 title "Live sync against polling (cmd/synchro-load over HTTP, 1000 changes/s, 2-core VM, PostgreSQL 15)" font ",12"
set logscale x
set logscale y
set grid
set key top left font ",9"
set xlabel "devices"
f = "docs/bench/data/live.tsv"

set title "Commit to client (busy: 1000 changes/s)"
set ylabel "milliseconds"
plot f u 1:2 w lp lw 2 t "polling every 50 ms, p50", \
     f u 1:3 w lp lw 2 t "polling every 50 ms, p99", \
     f u 1:4 w lp lw 2 t "long-poll, p50", \
     f u 1:5 w lp lw 2 t "long-poll, p99"

set title "Database transactions per second"
set ylabel "transactions/s (all sessions)"
plot f u 1:6 w lp lw 2 t "polling, busy", \
     f u 1:7 w lp lw 2 t "long-poll, busy", \
     f u 1:8 w lp dt 2 lw 2 t "polling, idle", \
     f u 1:9 w lp dt 2 lw 2 t "long-poll, idle"
