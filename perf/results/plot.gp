set terminal png size 1100,600 font ',10'
set output 'results.png'
set title "sdwand per-scenario throughput, 2 cores, Intel(R) Xeon(R) Processor"
set ylabel 'Mpps (log scale)'
set logscale y
set xlabel 'frame size'
set datafile missing '-'
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key outside right top vertical
set grid ytics
set yrange [0.05:*]
plot 'plot.dat' using 2:xtic(1) title columnheader(2), 'plot.dat' using 3:xtic(1) title columnheader(3), 'plot.dat' using 4:xtic(1) title columnheader(4), 'plot.dat' using 5:xtic(1) title columnheader(5), 'plot.dat' using 6:xtic(1) title columnheader(6), 'plot.dat' using 7:xtic(1) title columnheader(7), 'plot.dat' using 8:xtic(1) title columnheader(8), 'plot.dat' using 9:xtic(1) title columnheader(9)
