"""Models: the classifiers now; the GAN and autoencoder come with the pre-processing stages."""
