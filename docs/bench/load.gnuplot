# The plot of docs/benchmarks.md, from the data files benchreport writes
# (docs/bench/sweep.sh runs it): throughput and latency of cmd/synchro-load
# against the number of devices and against the changelog's size.
set terminal pngcairo size 1400,1000 font "DejaVu Sans,10"
set output "docs/bench/load.png"
set datafile separator "\t"
set datafile commentschars "#"
set multiplot layout 2,2 title "synchro under load (cmd/synchro-load, 2-core VM, PostgreSQL 15)" font ",13"
set logscale x
set logscale y
set grid
set key top left font ",9"
set format x "%.0s%c"

c = "docs/bench/data/clients.tsv"
l = "docs/bench/data/changelog.tsv"

set xrange [0.8:300]
set title "Throughput against devices"
set xlabel "devices"
set ylabel "per second"
plot c u 1:2 w lp lw 2 t "push records/s", \
     c u 1:6 w lp lw 2 t "pull records/s", \
     c u 1:5 w lp lw 2 t "pulls/s", \
     c u 1:11 w lp lw 2 t "snapshot rows/s", \
     c u 1:13 w lp lw 2 t "capture rows/s", \
     c u 1:16 w lp dt 2 t "raw SQL push records/s"

set title "Latency against devices"
set ylabel "milliseconds"
plot c u 1:4 w lp lw 2 t "push p99", \
     c u 1:8 w lp lw 2 t "pull p99", \
     c u 1:10 w lp lw 2 t "commit-to-pull p99", \
     c u 1:9 w lp lw 2 t "commit-to-pull p50", \
     c u 1:18 w lp dt 2 t "raw SQL pull p99"

set xrange [5000:20000000]
set title "Throughput against changelog size (50 devices)"
set xlabel "changelog rows at the start"
set ylabel "per second"
plot l u 1:2 w lp lw 2 t "push records/s", \
     l u 1:6 w lp lw 2 t "pull records/s", \
     l u 1:5 w lp lw 2 t "pulls/s", \
     l u 1:11 w lp lw 2 t "snapshot rows/s", \
     l u 1:13 w lp lw 2 t "capture rows/s"

set title "Latency against changelog size (50 devices)"
set ylabel "milliseconds"
plot l u 1:4 w lp lw 2 t "push p99", \
     l u 1:8 w lp lw 2 t "pull p99", \
     l u 1:10 w lp lw 2 t "commit-to-pull p99", \
     l u 1:9 w lp lw 2 t "commit-to-pull p50", \
     l u 1:12 w lp lw 2 t "snapshot page p99"
unset multiplot
