rule summarize_runs:
    input:
        get_run_csvs,
    output:
        summary="results/{exp}/summary.csv",
        strategies="results/{exp}/strategies.csv",
    log:
        "logs/summarize_runs/{exp}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/asal.yaml"
    shell:
        "asal summarize --runs {input} --out {output.summary} --strategies-out {output.strategies} 2> {log}"


rule plot_accuracy:
    input:
        "results/{exp}/summary.csv",
    output:
        report("results/{exp}/accuracy.pdf", caption="../docs/captions/accuracy.rst", category="{exp}"),
    log:
        "logs/plot_accuracy/{exp}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/asal.yaml"
    shell:
        "asal plot-accuracy --summary {input} --out {output} --title {wildcards.exp:q} 2> {log}"
